@echo off
rem Start the imagestudio server; every argument is passed on to "imagestudio serve".
rem
rem expandable_segments stops PyTorch's CUDA allocator from fragmenting memory over a long session
rem (as in the original documents' start_app.bat; Windows builds of torch may ignore it with a warning).
rem A value you set yourself wins.
setlocal
if not defined PYTORCH_CUDA_ALLOC_CONF set "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
if exist "%~dp0.venv\Scripts\activate.bat" call "%~dp0.venv\Scripts\activate.bat"
rem A config.yaml next to this file is used from wherever it is started, unless a config was given
rem (--config, or IMAGESTUDIO_CONFIG).
if not defined IMAGESTUDIO_CONFIG if exist "%~dp0config.yaml" (
    echo.%* | findstr /i /c:"--config" >nul || set "IMAGESTUDIO_CONFIG=%~dp0config.yaml"
)
imagestudio serve %*
endlocal
